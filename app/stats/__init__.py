"""Pure statistics for reader studies and classifiers (numpy and scipy only; imports nothing of app).

- `roc`: empirical ROC curves, the trapezoidal (Mann-Whitney) AUC, DeLong's structural components and
  variance, the test of AUC = 0.5.
- `proportions`: proportions with Wilson intervals, exact binomial and Fisher (mid-p) tests.
- `readers`: one reader's discrimination: AUC, sensitivity, specificity, fooling rate, Youden's J.
- `agreement`: Cohen's (weighted) kappa, Fleiss' kappa, Krippendorff's alpha with bootstrap intervals.
- `ratings`: long-format rating tables (modality, reader, case, truth, rating) and their FOMs.
- `foms`: figures of merit as means of per-case components, and their jackknife or DeLong covariance.
- `mrmc`: multi-reader multi-case analysis after Obuchowski & Rockette with Hillis' degrees of freedom.
- `power`: power and sample size of such studies from a pilot's variance components.

Convention of the product (FACTS.md): positive = synthetic. Wherever a figure is undefined (an empty
class, a single category) the result is None, never NaN, so that pages can show a dash.
"""
