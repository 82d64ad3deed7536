"""Features: images -> vectors, the feature store, and the data sets primo learns from.

* :mod:`primo.features.store`: :class:`FeatureStore`, the HDF5 feature store every command reads.
* :mod:`primo.features.images`: finding and loading images (EXIF rotation, colour modes, corrupt
  files skipped with a warning).
* :mod:`primo.features.extractors`: Keras applications (VGG16-FC2, ResNet50, MobileNetV3-Large,
  EfficientNet-B0), TF-Hub feature-vector modules, the bundled Fashion-MNIST embedding and raw
  pixels; :mod:`primo.features.extract` runs them over image collections into a store (batches,
  progress, resume).
* :mod:`primo.features.datasets`: Fashion-MNIST (IDX files) and the bundled demo subset.
* :mod:`primo.features.embed`: the triplet-loss Fashion-MNIST embedding (paper 003).
* :mod:`primo.features.synthetic`: FC2-like synthetic features for scale tests.

TensorFlow is imported only by the functions that run a network.
"""

from .store import FeatureStore, read_features, write_features

__all__ = ["FeatureStore", "read_features", "write_features"]
