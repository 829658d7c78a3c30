"""Video diffusion backbones: Wan2.1 on diffsynth (:mod:`.wan`) and a tiny random Wan for tests (:mod:`.tiny`).

Importing this package is light; diffsynth loads when a model is first built.
"""
