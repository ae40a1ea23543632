"""Learned long-time propagators: Action-Angle Networks (arXiv 2211.15338), baselines and toy systems.

Not to be confused with mlpot/analysis/dynamics.py (scattering functions of MD trajectories).
"""
