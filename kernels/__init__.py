"""infopt's Triton GPU kernels (installed as ``infopt.kernels``).

One op family per module; each module holds private ``@triton.jit`` kernels, one public host
function that validates inputs and launches them, and a float64 numpy reference. Importing this
package does not import triton or torch: only the kernel modules do.
"""
