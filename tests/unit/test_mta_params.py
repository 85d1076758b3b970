"""Parsing of MAIL and RCPT arguments."""

from __future__ import annotations

import pytest

from labenv.mta.params import ParameterError, decode_xtext, parse_mail_parameters, parse_rcpt_parameters, split_path


def test_split_path_brackets_and_params():
    assert split_path("FROM:<a@b.test> SIZE=10 BODY=8BITMIME", "FROM:") == ("a@b.test", ["SIZE=10", "BODY=8BITMIME"])


def test_split_path_null_sender():
    assert split_path("FROM:<>", "FROM:") == ("", [])


def test_split_path_without_brackets():
    assert split_path("from: a@b.test", "FROM:") == ("a@b.test", [])


def test_split_path_drops_source_route():
    assert split_path("TO:<@relay.test:user@host.test>", "TO:") == ("user@host.test", [])


def test_split_path_missing_keyword():
    with pytest.raises(ParameterError) as caught:
        split_path("<a@b.test>", "FROM:")
    assert str(caught.value).startswith("501 5.5.2 ")


def test_mail_parameters_all_known():
    params = parse_mail_parameters(["SIZE=100", "BODY=8bitmime", "RET=hdrs", "ENVID=a+2Bb", "BY=120;RT"], 1000)
    assert params.size == 100
    assert params.body == "8BITMIME"
    assert params.ret == "HDRS"
    assert params.envid == "a+2Bb"
    assert params.by == "120;RT"


def test_mail_size_over_limit():
    with pytest.raises(ParameterError) as caught:
        parse_mail_parameters(["SIZE=1001"], 1000)
    assert str(caught.value) == "552 5.3.4 Message size exceeds fixed maximum message size"


@pytest.mark.parametrize("word", ["SIZE=x", "ENVID=a b", "ENVID=a=b", "RET=", "BY=1;X", "SMTPUTF8"])
def test_mail_bad_parameter(word):
    with pytest.raises(ParameterError):
        parse_mail_parameters([word], 1000)


def test_rcpt_parameters():
    params = parse_rcpt_parameters(["NOTIFY=success,delay", "ORCPT=rfc822;a+40b"])
    assert params.notify == ["SUCCESS", "DELAY"]
    assert params.orcpt == "rfc822;a+40b"


@pytest.mark.parametrize("word", ["NOTIFY=NEVER,FAILURE", "NOTIFY=SOMETIMES", "ORCPT=nosemicolon", "FOO=1"])
def test_rcpt_bad_parameter(word):
    with pytest.raises(ParameterError):
        parse_rcpt_parameters([word])


def test_decode_xtext():
    assert decode_xtext("a+40b+2Bc") == "a@b+c"
