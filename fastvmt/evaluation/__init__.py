"""Evaluation of batch runs: quality tables per strategy (``fastvmt bench quality``) and the DAVIS manifest of the
DiTFlow/FastVMT protocol (``fastvmt bench manifest``)."""
