"""Core ML: the ``.mlpackage`` that ``repsr merge -o x.mlpackage`` writes for Xcode and Apple devices.

An export-only engine: coremltools converts on any OS but runs a model only on macOS, and none is at hand
to test a runner on, so repsr writes and checks the package (:mod:`repsr.export.coreml`) and leaves
running it to the app. ``--backend coreml`` therefore says where the file runs instead of running it.
"""

from __future__ import annotations

from repsr.export.coreml import PRECISIONS, export_coreml
from repsr.inference.engines.spec import Engine

ENGINE = Engine(name="coreml", runtime="Core ML", loader=None, writes=(".mlpackage",), exporter=export_coreml,
                export_precisions=PRECISIONS, package="coremltools", extra="coreml",
                runs_on="the package runs in Core ML on iOS 15 / macOS 12 or later (docs/deploy.md, Core ML)")
