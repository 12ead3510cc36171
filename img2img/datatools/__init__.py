"""Data set tools: prepare, combine, split and derive pairs; download the public pix2pix data sets.

Folder operations (each reads ``src``, writes ``out``, returns a :class:`Result`)::

    from img2img import datatools as dt
    dt.split_ab("photos_ab/", "work/")                 # work/A, work/B
    dt.edges("work/A", "edges2photos/", thickness=2)   # edges|photo AB files
    dt.split("edges2photos/", "data/", (0.8, 0.1, 0.1), seed=0)
    dt.download("facades", "datasets/")

Pixel operations on arrays are in :mod:`img2img.datatools.ops`.
"""
from .downloads import DATASETS, Downloaded, PublicDataset, download, safe_extract
from .folders import Result, blank, combine, default_workers, edges, grayscale, resize, split, split_ab

__all__ = ["DATASETS", "Downloaded", "PublicDataset", "Result", "blank", "combine", "default_workers", "download",
           "edges", "grayscale", "resize", "safe_extract", "split", "split_ab"]
