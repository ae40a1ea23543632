"""Molecular dynamics with mlpot potentials (the driver behind ``mlpot md``)."""
