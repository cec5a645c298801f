"""Client for the noised daemon: wire protocol v1 codec, ZeroMQ endpoints, loss reports, reference noise stream."""

from .client import Batch, Consumer, DeliveryError, DeliveryReport, Producer, Rejection
from .codec import DTYPES, ProtocolError, decode, dtype_tag, encode
from .feedback import Reporter, encode_report, new_generation, weighted_loss
from .heap import keep_freed_memory
from . import coupling
from .keys import ClientKeys, read_key_file

__all__ = ["Batch", "ClientKeys", "Consumer", "DeliveryError", "DeliveryReport", "Producer", "Rejection", "DTYPES", "ProtocolError", "Reporter", "decode",
           "dtype_tag", "encode", "encode_report", "keep_freed_memory", "new_generation", "read_key_file", "weighted_loss"]
__version__ = "0.1.0"
PROTOCOL_VERSION = "1"
