"""Reading models of other packages into mlpot.

- :mod:`mlpot.importers.mace_file`: a mace-torch ``.model`` file read without executing code from it
  (and without mace-torch installed): its config, in the terms of mace's own
  ``extract_config_mace_model``, and its state dict.
- :mod:`mlpot.importers.mace_convert`: an mlpot model that reproduces the mace model.
"""
