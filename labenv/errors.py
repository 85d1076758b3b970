"""The exception tree shared by every part of labenv.

LabenvError
 +-- ConfigError        a lab file or setting is invalid; the message names the field
 +-- DockerError        the Docker engine is missing or refused a request
 +-- BuildError         an image build failed
 +-- ReadinessError     a lab host did not become ready in time
 +-- ScenarioError      a scenario file is invalid; the message names file, line and field
 +-- ExpectationFailed  a replayed step did not show what the scenario expects

Each message says what failed, the likely cause and what to do next, in one
line, because the command line prints it as it is.
"""


class LabenvError(Exception):
    """Base class of every error labenv reports to its user."""


class ConfigError(LabenvError):
    """A lab file, command-line option or setting has an invalid value."""


class DockerError(LabenvError):
    """The Docker engine is unreachable or rejected a request."""


class BuildError(LabenvError):
    """An image build failed."""


class ReadinessError(LabenvError):
    """A lab host did not become ready before its timeout."""


class ScenarioError(LabenvError):
    """A scenario file is invalid."""


class ExpectationFailed(LabenvError):
    """A replayed step did not show what its scenario expects."""
