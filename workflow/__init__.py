"""The layer between the command lines and the libraries: presets, typed run options, builders, the one policy
loader, and `train(options) -> TrainResult`.

train.py and evaluate.py parse and print; what a run is made of and how it goes lives here (docs/design.md).
"""
