/**
 * What the router adds around a request: A/B splits (arm choice and each arm's running results,
 * compared by Welch's t-test) and the response cache.
 */
export { armFor, Experiment, isAcceptedOutcome, MAX_OUTCOME_MAGNITUDE } from './experiment.ts';
export { cacheKeyOf, ResponseCache } from './response-cache.ts';
