"""Model zoo, registry, training and the cache of trained base models.

>>> from autostruct.models import create_model, list_models
>>> model = create_model("resnet20", num_classes=10, in_channels=1, image_size=28)
"""

from autostruct.models import zoo  # noqa: F401  (registers the zoo models)
from autostruct.models.registry import (
    ModelBuilder,
    check_model_input,
    create_model,
    import_modules,
    is_factory_name,
    list_models,
    register_model,
    resolve_model,
)

#: The built-in zoo (other registered families, e.g. NAS children, need extra arguments such as ``arch``).
ZOO_MODELS = ("resnet20", "resnet32", "resnet56", "vgg11", "vgg16", "mobilenet", "mobilenetv2")

__all__ = [
    "ZOO_MODELS",
    "ModelBuilder",
    "check_model_input",
    "create_model",
    "import_modules",
    "is_factory_name",
    "list_models",
    "register_model",
    "resolve_model",
]
