"""mlpot potentials driven by other simulation engines: i-PI (ipi), TorchSim (torchsim)."""
