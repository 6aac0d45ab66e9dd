"""What each metric means: a human title, the y axis label with its unit, and a sentence.

One registry for every place a metric is shown (the report's plots and tables,
`selfimprove show`, the web app). Keys are matched by pattern, so a family such as
`eval/accuracy_3_digits` is one entry; a statistic suffix (`_median`, `_mean`, `_q10`,
`_low`, ...) is split off first and named in the title. A test runs every loop once and
fails on a metric key this registry does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STATISTICS = (
    ("_median", "median over seeds"),
    ("_mean", "mean over seeds"),
    ("_q10", "10th percentile over seeds"),
    ("_q90", "90th percentile over seeds"),
    ("_low", "lower end of its 95% interval"),
    ("_high", "upper end of its 95% interval"),
)


_WORDS = {"eval": "test set", "val": "validation set, the gate's"}


@dataclass(frozen=True)
class MetricInfo:
    """How to show one metric key."""

    key: str
    title: str  # human title, e.g. "Spread σ of the fitted Gaussian (median over seeds)"
    axis: str  # y axis label with its unit, e.g. "σ (real data: 1)"
    description: str  # one sentence: what is measured, on what
    share: bool = False  # a value in [0, 1], drawn on a fixed 0..1 axis
    known: bool = True  # False: not in the registry (the title is the key, humanized)

    @property
    def short(self) -> str:
        """The title without its statistic, for table headers."""
        return self.title.split(" (")[0]


@dataclass(frozen=True)
class _Entry:
    pattern: re.Pattern[str]
    title: str  # may name the pattern's groups, e.g. "Accuracy on {n}-digit sums"
    axis: str
    description: str
    share: bool = False


def _entry(pattern: str, title: str, axis: str, description: str, share: bool = False) -> _Entry:
    return _Entry(re.compile(pattern + r"\Z"), title, axis, description, share)


_ENTRIES = (
    # the collapse studies (E1-E9): what the model itself became
    _entry(
        "collapse/sigma",
        "Spread σ of the fitted Gaussian",
        "σ (real data: 1)",
        "Standard deviation of the model fitted at this generation.",
    ),
    _entry(
        "collapse/log_sigma_iqr",
        "Disagreement between seeds: interquartile range of log σ",
        "IQR of log σ",
        "How far apart the seeds' fitted spreads have wandered (a random walk grows it).",
    ),
    _entry(
        "collapse/mean_abs",
        "Distance of the fitted mean from the true mean",
        "|μ| (real data: 0)",
        "Absolute value of the fitted mean.",
    ),
    _entry(
        "collapse/mean_rms",
        "Drift of the fitted mean (root mean square over seeds)",
        "RMS of μ (real data: 0)",
        "How far the fitted means have drifted from the true mean, over seeds.",
    ),
    _entry(
        "collapse/component_std",
        "Spread of the mixture's components",
        "mean component σ (real data: 1)",
        "Average standard deviation of the fitted mixture's components.",
    ),
    _entry(
        "collapse/l2_distance",
        "Distance of the fitted mixture from the true one",
        "squared L2 distance",
        "Integral of the squared difference between the two densities, computed exactly.",
    ),
    _entry(
        "collapse/frechet",
        "Fréchet distance of the fitted model to the real data",
        "Fréchet distance",
        "Fréchet (2-Wasserstein between Gaussians) distance from the real distribution.",
    ),
    _entry(
        "collapse/min_weight",
        "Weight of the smallest mixture component",
        "mixture weight",
        "The smallest component's weight: a component dying out goes to 0.",
        share=True,
    ),
    _entry(
        "collapse/test_error",
        "Error of the regression weights",
        "squared error ‖w − w*‖²",
        "Squared distance of the fitted weights from the true weights.",
    ),
    _entry(
        "collapse/spread",
        "Spread of the fitted Gaussian",
        "√(trace Σ / d) (real data: 1)",
        "Root mean variance per dimension of the fitted model.",
    ),
    _entry(
        "collapse/support_size",
        "Distinct items the model still produces (support)",
        "items",
        "Number of distinct items with non-zero probability under the model.",
    ),
    _entry(
        "collapse/error",
        "Test error of the memorizer",
        "share of test queries wrong",
        "Share of test queries the model answers wrongly.",
        share=True,
    ),
    _entry(
        "collapse/latent_spread",
        "Spread of the VAE's latent codes",
        "std of latent means (gen 0 ≈ 1)",
        "Standard deviation of the encoder's latent means on real digits.",
    ),
    # monitors: what the chapter says to watch on the generated data
    _entry(
        "monitor/spread",
        "Spread of the generated data",
        "standard deviation",
        "Root mean per-feature variance of this generation's samples.",
    ),
    _entry(
        "monitor/mean_drift",
        "Drift of the generated data's mean",
        "distance to the real mean",
        "Euclidean distance between the samples' mean and the real data's mean.",
    ),
    _entry(
        "monitor/tail_mass",
        "Share of samples in the real data's tails",
        "share outside the real 0.5-99.5% range",
        "Real data gives about 0.01; tails vanish first in a collapsing loop.",
        share=True,
    ),
    _entry(
        "monitor/mmd",
        "Maximum mean discrepancy to the real data",
        "MMD² (RBF kernel)",
        "Kernel two-sample distance between generated and real data.",
    ),
    _entry(
        "monitor/frechet",
        "Fréchet distance of the samples to the real data",
        "Fréchet distance",
        "Fréchet distance between Gaussians fitted to generated and real data.",
    ),
    _entry(
        "monitor/js",
        "Jensen-Shannon divergence to the real distribution",
        "JS divergence (nats, at most ln 2)",
        "Divergence between the model's and the real distribution.",
    ),
    _entry(
        "monitor/good_turing",
        "Good-Turing estimate of the missing mass",
        "share of items seen once",
        "What the model can estimate about its own unseen tail from its own samples.",
        share=True,
    ),
    _entry(
        "monitor/precision",
        "Precision: generated samples that look real",
        "precision (k-NN manifold)",
        "Share of generated samples inside the real data's k-NN manifold.",
        share=True,
    ),
    _entry(
        "monitor/recall",
        "Recall: real data the model still covers",
        "recall (k-NN manifold)",
        "Share of real samples inside the generated data's k-NN manifold.",
        share=True,
    ),
    _entry(
        "monitor/density",
        "Density of generated samples near real ones",
        "density (1 = as dense as real)",
        "How many real neighbourhoods each generated sample falls in (Naeem et al.).",
    ),
    _entry(
        "monitor/coverage",
        "Coverage of the real data",
        "coverage",
        "Share of real neighbourhoods with at least one generated sample (Naeem et al.).",
        share=True,
    ),
    _entry(
        "monitor/class_entropy",
        "Entropy of the generated digits' classes",
        "entropy (nats; uniform over 10: 2.30)",
        "How evenly the generated digits spread over the ten classes.",
    ),
    _entry(
        "monitor/gen0_nll",
        "Generated text under the generation-0 model",
        "negative log-likelihood (nats per token)",
        "How surprising this generation's text is to the model trained on real text.",
    ),
    _entry(
        "monitor/gen0_low_share",
        "Generated text generation 0 finds very likely",
        "share of documents (real text: 0.1)",
        "Share of generated documents whose perplexity under generation 0 is below the "
        "real held-out documents' 10th percentile (the low-perplexity spike).",
        share=True,
    ),
    _entry(
        "monitor/gen0_high_share",
        "Generated text generation 0 finds very unlikely",
        "share of documents (real text: 0.1)",
        "Share of generated documents whose perplexity under generation 0 is above the "
        "real held-out documents' 90th percentile (the long tail of errors).",
        share=True,
    ),
    _entry(
        "monitor/compression",
        "Compression ratio of the generated text",
        "compressed / raw size (lower: more repetitive)",
        "zlib level 9 compressed size over raw size.",
    ),
    _entry(
        "monitor/vocabulary",
        "Vocabulary of the generated text",
        "distinct words",
        "Number of distinct words in this generation's text.",
    ),
    _entry(
        "monitor/novel_words",
        "Words the real text never used",
        "share of word tokens",
        "Share of generated word tokens outside the real vocabulary.",
        share=True,
    ),
    _entry(
        "monitor/rare_words",
        "Rare real words still produced",
        "share of rare real words",
        "Share of the real text's rare words that this generation still produces.",
        share=True,
    ),
    _entry(
        "monitor/rare_bigrams",
        "Rare real word pairs still produced",
        "share of rare real bigrams",
        "Share of the real text's rare bigrams that this generation still produces.",
        share=True,
    ),
    _entry(
        r"monitor/distinct_(?P<n>\d+)",
        "Distinct {n}-grams",
        "distinct / total {n}-grams",
        "Share of {n}-grams in the generated text that are distinct.",
        share=True,
    ),
    _entry(
        "monitor/self_bleu",
        "Self-BLEU of the generated text",
        "self-BLEU (higher: less diverse)",
        "BLEU of each generated document against the others.",
        share=True,
    ),
    # the setting an arm of a sweep was run at (drawn as the x axis of the sweep figure)
    _entry(
        r"sweep/(?:x|group)/(?P<name>\w+)",
        "Swept setting: {name}",
        "{name}",
        "The value of {name} this arm was run at.",
    ),
    # class balance of a generative model's samples
    _entry(
        r"class/share_of_digit_(?P<n>\d+)",
        "Share of digit {n} among generated samples",
        "share of samples",
        "How often the classifier labels a generated sample as digit {n}.",
        share=True,
    ),
    # evaluation of reasoning, code and distilled models
    _entry(
        r"(?P<split>eval|val)/accuracy",
        "Accuracy ({split})",
        "share correct",
        "Share of held-out problems answered correctly.",
        share=True,
    ),
    _entry(
        r"eval/accuracy_(?P<n>\d+)_digits",
        "Accuracy on {n}-digit problems",
        "share correct",
        "Share of held-out {n}-digit problems answered correctly.",
        share=True,
    ),
    _entry(
        "eval/accuracy_trained_lengths",
        "Accuracy on the lengths trained on",
        "share correct",
        "Accuracy over the problem lengths the loop trained on.",
        share=True,
    ),
    _entry(
        "eval/accuracy_held_out",
        "Accuracy on held-out lengths",
        "share correct",
        "Accuracy over the trained lengths none of whose held-out problems any arm trains on "
        "(a length with too few distinct problems to hold any out is left out).",
        share=True,
    ),
    _entry(
        r"eval/accuracy_(?P<shape>equal|unequal)",
        "Accuracy on {shape}-length sums",
        "share correct",
        "Held-out sums whose operands have {shape} numbers of digits, averaged over the trained "
        "lengths of 2 digits and up.",
        share=True,
    ),
    _entry(
        r"eval/(?P<shape>equal|unequal)_(?P<n>\d+)_digits",
        "Accuracy on {shape}-length {n}-digit sums",
        "share correct",
        "Held-out {n}-digit sums whose operands have {shape} numbers of digits.",
        share=True,
    ),
    _entry(
        r"eval/robust_(?P<set>[a-z_]+)",
        "Accuracy on the robustness set {set}",
        "share correct",
        "A held-out set that probes one difficulty (one_digit_addend, carry_chain, no_carry, "
        "zeros).",
        share=True,
    ),
    _entry(
        r"eval/right_wrong_working_(?P<n>\d+)_digits",
        "Right answers with wrong working, {n} digits",
        "share of right answers",
        "Of the held-out {n}-digit problems answered right, the share whose working has a wrong "
        "step: an answer check cannot tell them apart.",
        share=True,
    ),
    _entry(
        r"eval/working_correct_(?P<n>\d+)_digits",
        "Whole working correct on {n}-digit problems",
        "share with every step right",
        "Share of {n}-digit problems whose every working step is right, not only the answer.",
        share=True,
    ),
    _entry(
        r"(?P<split>eval|val)/pass_rate",
        "Programs that pass their tests ({split})",
        "pass rate",
        "Share of held-out tasks whose generated program passes the hidden tests.",
        share=True,
    ),
    _entry(
        r"eval/pass_rate_(?P<n>\d+)_steps",
        "Pass rate on {n}-step tasks",
        "pass rate",
        "Share of {n}-step tasks whose program passes its tests.",
        share=True,
    ),
    _entry(
        r"(?P<split>eval|val)/(test_)?nll",
        "Negative log-likelihood ({split})",
        "nats per token",
        "Cross-entropy of the model on held-out text (lower is better).",
    ),
    _entry(
        "eval/test_ppl",
        "Perplexity on held-out text",
        "perplexity (exp of nats per token)",
        "Exponential of the mean cross-entropy per token on the held-out plays (lower is better).",
    ),
    _entry(
        "eval/train_nll",
        "Negative log-likelihood (training text)",
        "nats per token",
        "Cross-entropy of the model on the text it was trained on.",
    ),
    _entry(
        "eval/test_loss",
        "Test loss",
        "nats per example",
        "Cross-entropy on the test set.",
    ),
    _entry(
        "eval/teacher_test_nll",
        "Teacher's negative log-likelihood",
        "nats per token",
        "The teacher's cross-entropy on the same held-out text.",
    ),
    _entry(
        "eval/teacher_accuracy",
        "Teacher's accuracy",
        "share correct",
        "The teacher's test accuracy.",
        share=True,
    ),
    _entry(
        "eval/unseen_class_accuracy",
        "Accuracy on a class the student never saw",
        "share correct",
        "Test accuracy on the class left out of the student's transfer set.",
        share=True,
    ),
    _entry(
        "eval/unseen_class_corrected",
        "Accuracy on the unseen class, bias corrected",
        "share correct",
        "As above, after the paper's correction of the unseen class's bias.",
        share=True,
    ),
    _entry(
        "eval/corrected_accuracy",
        "Accuracy after the bias correction",
        "share correct",
        "Test accuracy after correcting the unseen class's bias.",
        share=True,
    ),
    # games
    _entry(
        "eval/search_mistakes",
        "Search mistakes on every position",
        "positions with a losing move",
        "Positions of all non-terminal ones where the search's move is worse than minimax's.",
    ),
    _entry(
        "eval/policy_mistakes",
        "Raw-policy mistakes on every position",
        "positions with a losing move",
        "As above, for the network's policy without search.",
    ),
    _entry(
        "eval/in_play_mistakes",
        "Mistakes in positions reachable in play",
        "positions with a losing move",
        "Mistakes in every position reachable from its own moves and every reply.",
    ),
    _entry(
        "eval/in_play_losses",
        "Losing lines against any opponent",
        "losing lines",
        "Lines of play, every reply tried, that the agent loses.",
    ),
    _entry(
        "eval/in_play_positions",
        "Positions reachable in play",
        "positions",
        "Positions reachable from the agent's own moves and every opponent reply.",
    ),
    _entry(
        "eval/losses_vs_random",
        "Losses against a random player",
        "games lost",
        "Games lost against a uniformly random player.",
    ),
    _entry(
        "eval/value_error",
        "Value error against minimax",
        "mean |v − v*| (value range −1..1)",
        "Mean absolute difference between the network's values and minimax's.",
    ),
    _entry(
        r"pons/(?P<set>[^/]+)/(?P<kind>[a-z]+)_mistake_rate",
        "{kind} mistake rate on Pons' {set} positions",
        "share of positions with a mistake",
        "Share of the {set} test positions where the {kind} picks a move minimax rates worse.",
        share=True,
    ),
    _entry(
        "ladder/elo",
        "Elo on the MCTS ladder",
        "Elo (random-rollout MCTS ladder)",
        "Elo fitted to games against random-rollout MCTS of growing budgets.",
    ),
    _entry(
        r"ladder/score_vs_mcts(?P<n>\d+)",
        "Score against MCTS-{n}",
        "score (win 1, draw ½)",
        "Mean score in games against random-rollout MCTS with {n} simulations.",
        share=True,
    ),
    _entry(
        r"peers/score_vs_openspiel_mcts(?P<n>\d+)",
        "Score against OpenSpiel's MCTS-{n}",
        "score (win 1, draw ½)",
        "Mean score in games against OpenSpiel's MCTS with {n} simulations.",
        share=True,
    ),
    _entry(
        r"peers/elo_gap_vs_openspiel_mcts(?P<n>\d+)",
        "Elo gap to OpenSpiel's MCTS-{n}",
        "Elo difference",
        "Elo difference implied by the score against OpenSpiel's MCTS-{n}.",
    ),
    # training and cost
    _entry(
        "train/tokens",
        "Tokens trained on this generation",
        "tokens",
        "Tokens of kept data the candidate was trained on.",
    ),
    _entry(
        "train/tokens_total",
        "Tokens trained on so far",
        "tokens (cumulative)",
        "All tokens trained on since generation 0.",
    ),
    _entry(
        "kept/fraction",
        "Problems whose attempt was kept",
        "share of problems",
        "Share of this generation's problems with a verified rationale kept for training.",
        share=True,
    ),
    _entry(
        "kept/first_try_fraction",
        "Problems solved on the first try",
        "share of problems",
        "Share of problems whose first attempt passed the verifier (no hint).",
        share=True,
    ),
    _entry(
        "kept/rationalized_fraction",
        "Problems solved only with the answer as a hint",
        "share of problems",
        "Share of problems kept through rationalization (STaR's revise stage).",
        share=True,
    ),
    # Constitutional AI (constitutional/sl_cai.py): held-out prompts, held-out checkers
    _entry(
        "eval/harmless",
        "Held-out red-team prompts answered harmlessly",
        "share of prompts",
        "Share of first answers (greedy, no revision) to held-out red-team prompts that the "
        "held-out harmlessness checker passes (a keyword and sentence heuristic, not a judge).",
        share=True,
    ),
    _entry(
        r"eval/harmless_revision_(?P<k>\d+)",
        "Held-out harmlessness after {k} critique-and-revise rounds",
        "share of prompts",
        "Share of held-out red-team answers the held-out checker passes after {k} rounds of "
        "self-critique and revision (measured at generation 0: the paper's revision figure).",
        share=True,
    ),
    _entry(
        "eval/helpful",
        "Held-out benign prompts answered correctly",
        "share of prompts",
        "Share of held-out benign prompts with a known answer whose answer contains it and "
        "does not refuse (held-out checker).",
        share=True,
    ),
    _entry(
        "eval/refusal_benign",
        "Benign prompts refused",
        "share of prompts",
        "Share of held-out benign prompts the model refuses (over-refusal, the paper's "
        "evasiveness).",
        share=True,
    ),
    _entry(
        "eval/refusal_red_team",
        "Red-team prompts refused",
        "share of prompts",
        "Share of held-out red-team prompts the model refuses.",
        share=True,
    ),
    _entry(
        "eval/boilerplate_share",
        "Answers with the most common refusal phrase",
        "share of answers",
        "Share of held-out answers containing the most common refusal-like phrase: the "
        "boilerplate an over-trained model repeats.",
        share=True,
    ),
    _entry(
        r"eval/commentary_(?P<which>red_team|benign)",
        "Answers that comment on a response instead of answering ({which} prompts)",
        "share of prompts",
        "Share of held-out {which} answers whose first sentence is about 'the response' or "
        "'the answer' (a meter: a critique written where an answer should be).",
        share=True,
    ),
    _entry(
        "eval/opening_share_red_team",
        "Red-team answers opening with the most common three words",
        "share of answers",
        "Share of held-out red-team answers that open with the most common three-word opening "
        "among them: stock phrases of any kind, with no lexicon (1/32 when all differ).",
        share=True,
    ),
    _entry(
        "kept/copies_critique",
        "Kept red-team revisions that repeat their critique",
        "share of examples",
        "Share of kept red-team examples whose last revision repeats at least half of its "
        "critique's word trigrams.",
        share=True,
    ),
    _entry(
        "val/pass",
        "Validation prompts passing the training checkers",
        "share of prompts",
        "Share of validation prompts (training split, never trained on) whose greedy answer "
        "passes every training checker that applies: the gate's metric.",
        share=True,
    ),
    _entry(
        r"kept/pass_revision_(?P<k>\d+)",
        "Red-team chains passing the training checkers after {k} rounds",
        "share of chains",
        "This generation's share of red-team chains that pass every training checker after "
        "{k} critique-and-revise rounds.",
        share=True,
    ),
    _entry(
        "kept/red_team",
        "Red-team revisions kept",
        "examples",
        "Red-team examples kept for training so far (a prompt's newest passing revision).",
    ),
    _entry(
        "kept/helpful",
        "Helpful answers kept",
        "examples",
        "Helpful answers kept for training so far (those passing the training checker).",
    ),
    _entry(
        "kept/mean_revisions",
        "Rounds behind a kept red-team example",
        "rounds",
        "Mean number of critique-and-revise rounds behind the kept red-team examples.",
    ),
    # RL-CAI-lite (constitutional/rl_cai.py): DPO on AI preference labels
    _entry(
        "pref/win_rate",
        "AI preference for the policy over the initial model",
        "P(policy better)",
        "Mean preference of the feedback model (the frozen initial model, asked in both "
        "orders) for the policy's greedy answer over the initial model's, on held-out "
        "red-team prompts: the score RL optimizes (0.5 at generation 0 by construction).",
        share=True,
    ),
    _entry(
        "pref/position_bias",
        "Feedback model's bias towards the answer shown first",
        "P(choose (A)) - 0.5",
        "Mean probability that the feedback model picks the answer shown as (A), minus 0.5, "
        "over both orders of every held-out comparison (cancelled in the labels by asking "
        "both orders).",
    ),
    _entry(
        "pref/train_margin",
        "DPO implicit reward margin",
        "beta x log-ratio margin",
        "Mean over the generation's DPO steps of beta * ((log pi - log ref)(chosen) - "
        "(log pi - log ref)(rejected)) on the training pairs (trl's rewards/margins).",
    ),
    _entry(
        "pref/label_confidence",
        "Confidence of the AI preference labels",
        "|P(first better) - 0.5|",
        "Mean distance from a coin flip of the feedback model's labels of this generation's "
        "sampled pairs.",
    ),
    _entry(
        "kept/pairs",
        "Preference pairs trained on",
        "pairs",
        "Pairs of this generation whose AI label was confident enough to train on with DPO.",
    ),
    _entry(
        "kept/pair_share",
        "Share of sampled pairs confidently labelled",
        "share of pairs",
        "Share of this generation's sampled pairs whose label passed the confidence margin.",
        share=True,
    ),
    # bias amplification (failures/urn.py, failures/labelling.py): feedback loops
    _entry(
        "feedback/share",
        "Region A's share of the urn",
        "share of discoveries in region A",
        "Where tomorrow's patrol goes: region A's share of the incidents put back in the urn "
        "(dashed: the true share of incidents).",
        share=True,
    ),
    _entry(
        "feedback/share_sd",
        "Spread of the share across runs",
        "standard deviation over runs",
        "How differently identical runs end: a uniform share on [0, 1] has 0.29.",
    ),
    _entry(
        "feedback/share_error",
        "Error of the share (mean over runs)",
        "|share - true share|",
        "How far each run's urn is from the true share of incidents; needs the truth.",
    ),
    _entry(
        "feedback/runaway_share",
        "Runs that ran away",
        "share of runs",
        "Runs whose share of region A is above the recipe's runaway share (0.9).",
        share=True,
    ),
    _entry(
        "monitor/ipw_gap",
        "Monitor: urn share against its inverse-propensity estimate (median over runs)",
        "|share - IPW share|",
        "Needs no truth: every discovery weighted by 1 / P(patrol was there) estimates each "
        "region's rate without the loop's bias; a gap says the loop feeds on itself.",
    ),
    _entry(
        "feedback/bias",
        "Bias |P(pred = 1) - P(y = 1)|",
        "bias (dashed: the paper's bound)",
        "Taori & Hashimoto's bias of the classifier's predictions, exact from the fitted "
        "threshold and the world's distribution; needs the answer key.",
    ),
    _entry(
        "feedback/predicted_share",
        "Predicted share of class 1 (median over seeds)",
        "P(pred = 1)",
        "How often the classifier predicts the majority class (the world's share is 0.7).",
        share=True,
    ),
    _entry(
        "feedback/model_label_share",
        "Class 1 in the model's own labels (median over seeds)",
        "share of model labels",
        "The share of the round's model-labelled inputs that the model called class 1.",
        share=True,
    ),
    _entry(
        "monitor/label_share_gap",
        "Monitor: model labels' class share against the round's human labels (median)",
        "|model share - human share|",
        "Needs no answer key: the round's human labels are a fair sample of the world; a "
        "model whose own labels drift from them is amplifying its bias.",
    ),
    _entry(
        "monitor/class_share_gap",
        "Monitor: class shares against the real data's",
        "total variation of class shares",
        "Half the summed gaps between each class's share in the model's samples (as the "
        "fixed classifier sees them) and in the real training data: the feedback loops' "
        "bias monitor (core.monitors.share_gap) on a generative loop.",
    ),
    # error amplification (failures/facts.py)
    _entry(
        "facts/error_rate",
        "Wrong capitals",
        "share of entities",
        "The model's greedy answer for every entity against the knowledge base (the truth).",
        share=True,
    ),
    _entry(
        "facts/planted_wrong",
        "Planted errors still wrong",
        "share of planted errors",
        "Entities whose generation-0 statement was a planted wrong capital and whose answer "
        "is still wrong (the planted capital or another).",
        share=True,
    ),
    _entry(
        "facts/planted_persisting",
        "Planted errors persisting",
        "share of planted errors",
        "Entities whose answer is still the very wrong capital planted in generation 0.",
        share=True,
    ),
    _entry(
        "facts/new_errors",
        "New errors",
        "share of entities",
        "Entities the model answers wrong that generation 0 answered right.",
        share=True,
    ),
    _entry(
        r"facts/confidence_(?P<which>wrong|right)",
        "Confidence on {which} answers",
        "probability of the answer",
        "The model's probability of its greedy answer, averaged over the {which} ones "
        "(all replicates pooled).",
        share=True,
    ),
    _entry(
        "facts/drift",
        "Monitor: answers changed since generation 0",
        "share of entities",
        "Needs no answer key: entities whose greedy answer differs from generation 0's (the "
        "model trained on real statements).",
        share=True,
    ),
    _entry(
        "facts/churn",
        "Answers changed since the last generation",
        "share of entities",
        "Needs no answer key: entities whose greedy answer differs from the incumbent's.",
        share=True,
    ),
    _entry(
        "kept/wrong_statements",
        "Wrong statements in the training data",
        "share of kept statements",
        "Kept statements whose capital is not the knowledge base's (measured, not filtered).",
        share=True,
    ),
    _entry(
        "kept/off_mode_statements",
        "Monitor: statements off their writer's own answer",
        "share of kept statements",
        "Needs no answer key: kept statements whose capital is not the greedy answer of the "
        "model that wrote them. Sampled at temperature 1, some always are, so it is above 0 "
        "whenever sampled statements reach training unchecked: it tells whether a verifier "
        "was on, not how wrong the model is.",
        share=True,
    ),
    _entry(
        "kept/real_statements",
        "Knowledge-base statements in the training data",
        "share of kept statements",
        "Kept statements taken from the knowledge base (corrections and the real share).",
        share=True,
    ),
    # reward hacking (hacking/): the learners' greedy policies, scored by the proxy and the intent
    _entry(
        "hacking/observed_return",
        "Observed return (the proxy)",
        "return over an episode",
        "What the learners are trained to maximise: the score the world shows them, for each "
        "learner's greedy policy from the unwatched start.",
    ),
    _entry(
        "hacking/hidden_performance",
        "Hidden performance (the intent)",
        "hidden performance over an episode",
        "What was intended (clockwise progress; the punishment always counted), never trained "
        "on; the dashed line is the intended behaviour's.",
    ),
    _entry(
        "hacking/hidden_watched",
        "Hidden performance when watched",
        "hidden performance over an episode",
        "The same policies from the start where a reviewer or the supervisor watches.",
    ),
    _entry(
        "hacking/gap",
        "Gap: normalised score minus normalised intent",
        "observed / best - hidden / intended",
        "0 for the intended behaviour, about 1 for gaming that keeps the full score and does "
        "nothing intended; above 1 when gaming also undoes the intent.",
    ),
    _entry(
        "hacking/watch_gap",
        "Behaving only when watched",
        "hidden watched - hidden unwatched",
        "How much better each learner's policy does when it can see it is watched.",
    ),
    _entry(
        "hacking/lapping_share",
        "Learners that race",
        "share of learners",
        "Learners whose greedy policy completes at least one lap.",
        share=True,
    ),
    _entry(
        "hacking/oscillating_share",
        "Learners caught oscillating",
        "share of learners",
        "The oscillation monitor: learners whose greedy policy ends in a cycle of at most two "
        "states (back and forth over one tile), whatever it scores.",
        share=True,
    ),
    _entry(
        "review/candidates",
        "Candidates for review",
        "items",
        "What the incumbent made that the verifier did not fail: what a review gate looks at.",
    ),
    _entry(
        "review/queued",
        "Items sent to review",
        "items",
        "Distinct candidates queued for review this generation (all of them, or the audited share).",
    ),
    _entry(
        "review/accepted",
        "Items accepted by review",
        "items",
        "Reviewed items accepted as they were.",
    ),
    _entry(
        "review/edited",
        "Items fixed by review",
        "items",
        "Reviewed items a reviewer edited; the edited text is trained on.",
    ),
    _entry(
        "review/rejected",
        "Items rejected by review",
        "items",
        "Reviewed items rejected; never trained on.",
    ),
    _entry(
        "review/unreviewed",
        "Items without a decision",
        "items",
        "Queued items no reviewer decided in time (dropped, or passed on in an audit).",
    ),
    _entry(
        "review/flagged",
        "Items the monitor flagged",
        "items",
        "Candidates the loop's cheap monitor flagged, queued first for review (priority mode).",
    ),
    _entry(
        "review/flagged_rejected",
        "Flagged items rejected",
        "items",
        "Flagged candidates that review rejected (priority mode).",
    ),
    _entry(
        "review/decided_before",
        "Items decided in an earlier generation",
        "items",
        "Candidates not drawn for review this generation whose earlier decision still holds.",
    ),
    _entry(
        "review/acceptance_rate",
        "Review acceptance rate",
        "share of reviewed items",
        "Accepted or edited among the reviewed items of the generation (audit and priority: "
        "among the random share alone).",
        share=True,
    ),
    # distribution shift and forgetting (failures/shift.py, failures/forgetting.py): an intent
    # classifier measured on held-out requests; monitors that need no labels
    _entry(
        "eval/clean_accuracy",
        "Accuracy on clean held-out requests",
        "share of requests",
        "Intent accuracy on canonical requests the grammar held out (what synthetic data "
        "looks like).",
        share=True,
    ),
    _entry(
        "eval/messy_accuracy",
        "Accuracy on messy held-out requests (real users)",
        "share of requests",
        "Intent accuracy on held-out requests as real users type them, every one messy: "
        "informal phrasings, slang, typos, odd case.",
        share=True,
    ),
    _entry(
        "eval/rare_accuracy",
        "Accuracy on the rare intents",
        "share of requests",
        "Intent accuracy on held-out real users' requests for the three rare intents (about "
        "1% of traffic each).",
        share=True,
    ),
    _entry(
        "eval/old_task_accuracy",
        "Accuracy on the old task",
        "share of requests",
        "Intent accuracy on held-out requests for the intents learned at generation 0.",
        share=True,
    ),
    _entry(
        "eval/new_task_accuracy",
        "Accuracy on the new task",
        "share of requests",
        "Intent accuracy on held-out requests for the intents fine-tuned on since.",
        share=True,
    ),
    _entry(
        "monitor/unsure_share",
        "Monitor: logged requests the model is unsure of",
        "share of logged requests",
        "Needs no labels: the share of a fixed sample of real traffic on which no intent gets "
        "probability 0.5 or more.",
        share=True,
    ),
    _entry(
        "monitor/ngram_js",
        "Monitor: training data against logged traffic (character 3-grams)",
        "Jensen-Shannon divergence (nats)",
        "Needs no labels: how far the kept data's character 3-gram distribution is from a "
        "sample of real traffic's.",
    ),
    _entry(
        "monitor/word_coverage",
        "Monitor: logged words the training data contains",
        "share of logged words",
        "Needs no labels: the share of the words of a real traffic sample (with repeats) "
        "that occur in the kept data.",
        share=True,
    ),
    _entry(
        "monitor/old_task_share",
        "Monitor: logged requests routed to the old task",
        "share of logged requests",
        "Needs no labels: the share of mixed traffic (half of it old-task requests) the model "
        "sends to an old-task intent.",
        share=True,
    ),
    _entry(
        "kept/rare_share",
        "Kept requests labelled with a rare intent",
        "share of kept requests",
        "Needs no true labels: the share of the training data whose label is one of the rare "
        "intents (real traffic: about 3%).",
        share=True,
    ),
    _entry(
        "kept/real_share",
        "Real requests in the training data",
        "share of kept requests",
        "The share of the kept training data that is real users' requests.",
        share=True,
    ),
    _entry(
        "kept/label_error",
        "Wrong self-labels in the training data",
        "share of kept synthetic requests",
        "Kept synthetic requests whose label is not the intent they were written for (the "
        "truth, read for the report only).",
        share=True,
    ),
    _entry(
        "kept/replay_share",
        "Replayed old-task requests in the training data",
        "share of kept requests",
        "The share of the training set drawn from generation 0's stored old-task requests.",
        share=True,
    ),
    _entry(
        r"kept/coverage_(?P<shape>equal|unequal)",
        "Pool's {shape}-length sums kept",
        "share of the pool's sums",
        "Share of the pool's multi-digit sums of {shape} operand lengths whose rationale passed "
        "the verifier and was kept: the diversity monitor, read from verdicts alone.",
        share=True,
    ),
    _entry(
        "kept/size",
        "Kept rationales",
        "rationales",
        "How many rationales passed the verifier this generation and were trained on.",
    ),
    _entry(
        "kept/unequal_share",
        "Unequal-length sums in the kept data",
        "share of kept sums",
        "Share of the kept multi-digit sums whose operands differ in length.",
        share=True,
    ),
    _entry(
        "kept/wrong_working_fraction",
        "Kept attempts with a wrong step",
        "share of kept attempts",
        "Kept attempts whose answer is right but some working step is wrong.",
        share=True,
    ),
    _entry(
        "kept/specs_solved_fraction",
        "Tasks with at least one passing program",
        "share of tasks",
        "Share of this generation's tasks for which a sampled program passed its tests.",
        share=True,
    ),
    _entry(
        "kept/samples_passing_fraction",
        "Sampled programs that pass",
        "share of programs",
        "Share of all sampled programs that passed their tests in the sandbox.",
        share=True,
    ),
    _entry(
        "kept/programs",
        "Programs kept for training",
        "programs",
        "Passing programs kept as this generation's training data.",
    ),
    _entry(
        "kept/sandbox_limit_fraction",
        "Programs stopped by a sandbox limit",
        "share of programs",
        "Share of sampled programs killed for time, memory or output (an infinite loop, say).",
        share=True,
    ),
    _entry(
        "model/words",
        "Words the model can produce",
        "distinct words",
        "Vocabulary with non-zero probability under the bigram model.",
    ),
    _entry(
        "model/bigrams",
        "Word pairs the model can produce",
        "distinct bigrams",
        "Bigrams with non-zero probability under the model.",
    ),
    _entry(
        r"(?:model|net)/(?P<who>teacher_)?parameters",
        "Parameters",
        "parameters",
        "Trainable parameters of the model.",
    ),
    _entry(
        r"timing/(?P<who>teacher_)?latency_ms",
        "Latency of one prediction",
        "milliseconds per example (this machine)",
        "Wall-clock time for one example on this machine (never compared on resume).",
    ),
    _entry(
        r"timing/(?P<who>teacher_)?throughput",
        "Throughput",
        "examples per second (this machine)",
        "Examples per second in a batch on this machine (never compared on resume).",
    ),
    _entry(
        r"timing/(?P<who>teacher_)?tokens_per_s",
        "Training speed",
        "tokens per second (this machine)",
        "Tokens processed per second on this machine (never compared on resume).",
    ),
)


def describe(key: str) -> MetricInfo:
    """The registry's entry for a metric key; an unknown key gets its name, humanized."""
    stem, statistic = _split_statistic(key)
    for entry in _ENTRIES:
        match = entry.pattern.match(stem)
        if match is None:
            continue
        fields = {
            k: _WORDS.get(v or "", (v or "").replace("_", " "))
            for k, v in match.groupdict().items()
        }
        title = entry.title.format(**fields)
        if fields.get("who"):
            title = f"{title} (teacher)"
        if statistic:
            title = f"{title} ({statistic})"
        return MetricInfo(
            key,
            title,
            entry.axis.format(**fields),
            entry.description.format(**fields),
            entry.share,
        )
    words = key.replace("/", ": ").replace("_", " ")
    return MetricInfo(key, words, words, "", known=False)


def _split_statistic(key: str) -> tuple[str, str]:
    for suffix, statistic in _STATISTICS:
        if key.endswith(suffix):
            stem = key.removesuffix(suffix)
            if any(entry.pattern.match(stem) for entry in _ENTRIES):
                return stem, statistic
    return key, ""
