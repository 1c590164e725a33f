"""Networks: torchvision-compatible backbones, the plain baseline, PTL networks, MGN, their heads and the
model zoo (:func:`create_model` / :func:`list_models`).

Uses ``ptl_ext.nn`` (the cells) and, through it, ``ptl_ext.ops``. Names are imported from their submodules on
first use; the zoo's names, families and input sizes are known without torch (``_registry``).
"""

from .._lazy import lazy_attributes

_EXPORTS = {
    "count_parameters": "_factory",
    "create_model": "_factory",
    "ALIASES": "_zoo",
    "ModelInfo": "_zoo",
    "is_model": "_zoo",
    "list_models": "_zoo",
    "model_info": "_zoo",
    "register_model": "_zoo",
    "resolve_model_name": "_zoo",
    "build_backbone": "_zoo",
    "DenseNet": "densenet",
    "densenet121": "densenet",
    "densenet161": "densenet",
    "densenet_bc100": "densenet",
    "save_torchvision_backbone": "export",
    "torchvision_state_dict": "export",
    "BNNeckHead": "heads",
    "MLPHead": "heads",
    "make_head": "heads",
    "MGN": "mgn",
    "MGNPTL": "mgn",
    "MGNOutput": "mgn",
    "MobileNetV2": "mobilenet",
    "deep_sort_weights_path": "mobilenet",
    "mobilenet_v2": "mobilenet",
    "PTLDenseNet161": "ptl",
    "PTLNet": "ptl",
    "PTLResNet50": "ptl",
    "ptl_densenet_bc100": "ptl",
    "ResNet": "resnet",
    "resnet34": "resnet",
    "resnet50": "resnet",
    "resnet101": "resnet",
    "BackboneNet": "staged",
    "HeadedNet": "staged",
    "probe_stages": "staged",
    "load_pretrained": "weights",
    "load_state": "weights",
}

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
del lazy_attributes

__all__ = list(_EXPORTS)
