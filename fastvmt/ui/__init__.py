"""The local web interface of ``fastvmt ui`` (the optional extra ``fastvmt[ui]``, which installs gradio).

Only :mod:`fastvmt.ui.app` imports gradio. :mod:`~fastvmt.ui.model` loads the server's one model,
:mod:`~fastvmt.ui.form` turns the page's inputs into a run's settings, :mod:`~fastvmt.ui.runner` runs them
through :mod:`fastvmt.transfer_run` into :mod:`~fastvmt.ui.runs`' run folder, following each step
(:mod:`~fastvmt.ui.steps`), and :mod:`~fastvmt.ui.pictures` and :mod:`~fastvmt.ui.summary` make what the page
shows of a run.
"""
