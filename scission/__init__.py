"""Scission: benchmark a DNN block by block and find where to cut it across device, edge and cloud.

Pure modules only here; TensorFlow lives in ``scission.benchmark`` and is imported lazily.
"""

from scission.errors import ScissionError
from scission.network import NetworkLink, NetworkTable, load_network_csv
from scission.profile_folder import load_profiles
from scission.profiles import Block, LatencyStats, ModelProfile, Profile, Resource

__all__ = [
    "Block",
    "LatencyStats",
    "ModelProfile",
    "NetworkLink",
    "NetworkTable",
    "Profile",
    "Resource",
    "ScissionError",
    "load_network_csv",
    "load_profiles",
]
