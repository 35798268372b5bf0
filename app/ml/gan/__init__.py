"""Progressive Growing GAN (Karras et al. 2018) as used by Segal et al. 2021 for chest X-rays."""
