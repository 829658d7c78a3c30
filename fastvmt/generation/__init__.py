"""The generation loop: guided flow-matching sampling (``pipeline``), one guided step's optimisation
(``guidance``), what extractors read of the backbone (``readings``), the sampler (``sampling``) and what a run
reports (``report``)."""
