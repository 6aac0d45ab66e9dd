"""Constitutional AI (Bai et al. 2022): a constitution of principles, prompt sets, checkers."""
