"""From MD trajectories and potentials to what scattering experiments measure.

trajectory.py (streamed, validated reading), weights.py (neutron and X-ray weights),
structure.py (g(r), coordination, S(Q)), dynamics.py (VDOS, MSD, S(Q, w)), dynasor_bridge.py
(mlpot's frames as a dynasor trajectory), output.py (CSV, PNG, JSON), analyze.py (the
``mlpot analyze`` pipeline), phonons.py (phonopy with any ASE calculator), settings.py (the
options of both, without heavy imports, for the command-line parsers).
"""
