"""Datasets made into task files: SWE-bench instances (`swebench`: its recipe table is data,
`swe_env/data/recipes/swebench.yaml`) and Harbor task folders (`harbor`: builds each environment and runs
`solve.sh` in a container). Above `build`, `runtime` and `grading`, whose images, containers and patch reading
they use; the task specs they write are `data.task`'s.
"""
