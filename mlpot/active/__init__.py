"""Active learning: choosing the frames worth labelling (``mlpot select``)."""
