# CPython's C module behind hashlib.sha256 (pyrunc imports it directly: hashlib would load
# OpenSSL); typeshed has no stub for it.
from hashlib import sha256 as sha256
