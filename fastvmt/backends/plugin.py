"""Built-in AMF backends, registered as a default plugin."""

from fastvmt.hookspecs import hookimpl


@hookimpl
def fastvmt_register_backends(register):
    from fastvmt.backends.reference import ReferenceBackend

    register("reference", ReferenceBackend)
    from fastvmt.backends.torch_backend import TorchBackend

    register("torch", TorchBackend)
    from fastvmt.backends.triton import TritonBackend  # imports no triton: the kernels load on first use
    register("triton", TritonBackend)
