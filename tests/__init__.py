"""linkpay's test suite (a package so ``tests.fakes`` can be loaded as a pytest plugin)."""
