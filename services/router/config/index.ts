/** The router's serving settings per model, read from YAML and layered over the built-in defaults. */
export {
  BUDGET_KEYS,
  budgetsOf, DEFAULT_ROUTER_BUDGETS, DEFAULT_SERVING_CONFIG, loadRouterConfig, servingConfigFor,
  type ModelServingConfig, type RouterBudgets, type RouterConfig, type TrafficSplit,
} from './router-config.ts';
