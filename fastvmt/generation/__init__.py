"""The generation loop: guided flow-matching sampling (``pipeline``), one guided step's optimisation
(``guidance``), what extractors read of the backbone (``readings``), the sampler (``sampling``) and what a run
reports (``report``, with its ``peak_memory`` and the ``motion_check`` of its output), and the check that stops a
run at the first NaN or infinity (``finite``)."""
