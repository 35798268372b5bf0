"""Pure statistics for reader studies and classifiers (numpy and scipy only; imports nothing of app).

- `roc`: empirical ROC curves, the trapezoidal (Mann-Whitney) AUC, DeLong's structural components and
  covariance, the test of AUC = 0.5.
- `proportions`: proportions with Wilson intervals, exact binomial and Fisher tests.
- `agreement`: Cohen's (weighted) kappa, Fleiss' kappa, Krippendorff's alpha with bootstrap intervals.
- `mrmc`: multi-reader multi-case analysis after Obuchowski & Rockette with Hillis' degrees of freedom.

Convention of the product (FACTS.md): positive = synthetic. Wherever a figure is undefined (an empty
class, a single category) the result is None, never NaN, so that pages can show a dash.
"""
