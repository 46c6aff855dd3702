"""Wire adapters: parse a protocol, call a service, render the protocol. No SQL here."""
