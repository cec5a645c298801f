"""Client for the noised daemon: wire protocol v1 codec, ZeroMQ endpoints, reference noise stream."""

from .client import Batch, Consumer, Producer
from .codec import DTYPES, ProtocolError, decode, dtype_tag, encode
from .keys import ClientKeys, read_key_file

__all__ = ["Batch", "ClientKeys", "Consumer", "Producer", "DTYPES", "ProtocolError", "decode", "dtype_tag", "encode",
           "read_key_file"]
__version__ = "0.1.0"
PROTOCOL_VERSION = "1"
