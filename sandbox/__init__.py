"""Local servers that stand in for vendors, for the demo and the tests."""
