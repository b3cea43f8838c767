"""The grader's in-container result recorder for test runners that write no JUnit report.

`sitecustomize.py` here (standard library only, Python 3.6+) is copied into the grader's private
folder for one grading and put first on PYTHONPATH; see `swe_env.grading.runners`.
"""
