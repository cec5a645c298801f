"""Client for the noised daemon: wire protocol v1 codec, ZeroMQ endpoints, loss reports, reference noise stream."""

from .client import Batch, Consumer, Producer
from .codec import DTYPES, ProtocolError, decode, dtype_tag, encode
from .feedback import Reporter, encode_report, weighted_loss

__all__ = ["Batch", "Consumer", "Producer", "DTYPES", "ProtocolError", "decode", "dtype_tag", "encode",
           "Reporter", "encode_report", "weighted_loss"]
__version__ = "0.1.0"
PROTOCOL_VERSION = "1"
