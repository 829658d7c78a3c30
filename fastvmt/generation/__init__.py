"""The generation loop: guided flow-matching sampling (``pipeline``), one guided step's optimisation
(``guidance``), the sampler (``sampling``) and what a run reports (``report``)."""
