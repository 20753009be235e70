"""The model zoo; importing this package registers every model (see :mod:`autostruct.models.registry`)."""

from autostruct.models.zoo import mobilenet, mobilenetv2, resnet, vgg  # noqa: F401
