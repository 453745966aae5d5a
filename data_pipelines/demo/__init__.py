"""The embedded demo data set: real photo locations and real Earth imagery from registry packages.

Its users, posting times and indoor photos are simulated, and everything made from it says so.
"""
