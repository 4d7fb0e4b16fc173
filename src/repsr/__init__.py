"""repsr: re-parameterizable, deployable image super-resolution.

Public API::

    model = repsr.create_model("repsr", scale=4, blocks=4, channels=16)   # training graph
    repsr.freeze_bn(model)                   # BN on population statistics from now on
    deploy = repsr.reparameterize(model)     # plain 3x3-conv net, SRVGGNetCompact layout
    repsr.save_model(deploy, "x4.safetensors"); repsr.load_model("x4.safetensors")
"""

from repsr.bn import freeze_bn
from repsr.config import ModelConfig
from repsr.data.imresize import imresize as imresize
from repsr.errors import UserError
from repsr.models import build_model, create_model
from repsr.reparam.convert import reparameterize
from repsr.weights import load_model, save_model

__version__ = "0.1.0"

__all__ = ["ModelConfig", "UserError", "build_model", "create_model", "freeze_bn", "load_model",
           "reparameterize", "save_model", "__version__"]
