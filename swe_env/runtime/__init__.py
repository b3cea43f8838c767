"""One container's life: the engine (the only place containers are created and removed), the sandbox,
the persistent shell, the warm pool.
"""
