"""absl entry points. Importing the package first sets how the C heap keeps XLA's large
CPU buffers (elc/host_memory.py), before JAX starts its threads."""

from elc.host_memory import keep_large_buffers_in_heap

keep_large_buffers_in_heap()
