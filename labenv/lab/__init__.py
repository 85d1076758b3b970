"""The lab model: lab file schema and defaults, addresses, users and DNS zones."""
