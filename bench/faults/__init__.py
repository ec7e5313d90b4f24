"""The fault workload: `python -m bench.faults --minutes 10 --seed N` (see __main__)."""
