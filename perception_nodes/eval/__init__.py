"""Bags, evaluation runners, reports and benchmarks."""
