"""The control API: protocol.py (the messages and OPS, the one table of operations), server.py
(the operations on a controller, served on a unix socket), client.py, ctl.py (`opte-fast ctl`,
made from OPS)."""
