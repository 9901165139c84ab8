"""Free TCP ports on 127.0.0.1 for lab processes."""
import socket

_handed_out = set()


def free_port():
    """A port nothing listens on now and that this process has not handed out before."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
