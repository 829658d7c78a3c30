"""An example fastvmt plugin: a cosine-spaced gradient scheduler and a robust Charbonnier AMF loss.

fastvmt finds it through the entry point ``example = "fastvmt_plugin_example.plugin"`` (group ``fastvmt``)
declared in this package's ``pyproject.toml``; :mod:`fastvmt_plugin_example.plugin` registers the components,
:mod:`~fastvmt_plugin_example.schedulers` and :mod:`~fastvmt_plugin_example.losses` hold them. Nothing is
imported here, so loading the entry point imports no torch.
"""
