"""Generators of weighted event samples whose true ratio is known exactly.

Each toy returns :class:`~quasiratio.events.EventSample` objects and an
exact ``true_ratio(x)``, so a user can check a whole set-up (features,
weights, method, training options) against the truth before trusting it
on simulated events.
"""
