"""Datasets (synthetic and real formats), transforms and the shared datamodule."""
from segexp.data.augment import SegTrainView
from segexp.data.coco import CocoInstances
from segexp.data.datamodule import DataModule, collate, read_class_file
from segexp.data.folder import FolderSegDataset
from segexp.data.pedes import PedesDataset
from segexp.data.datasets import DataError, RegionView, SegDataset, SyntheticPersons, SyntheticShapes

__all__ = ["CocoInstances", "FolderSegDataset", "DataError", "DataModule", "PedesDataset", "RegionView", "SegDataset", "SyntheticPersons",
           "SyntheticShapes", "SegTrainView", "collate", "read_class_file"]
