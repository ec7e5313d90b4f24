/*
 * Loaded after localstripe's Stripe.js (local development and tests only; never with real
 * Stripe). localstripe's stand-in returns nothing from createPaymentMethod and ignores the card
 * given to confirmCardPayment; this adds both, so pages call Stripe.js as with real Stripe:
 *   stripe.createPaymentMethod({type: "card", card: element, billing_details})
 *   stripe.confirmCardPayment(clientSecret, {payment_method: {card: element}})
 * The card goes from the browser to localstripe (a SetupIntent confirmed with the card, which
 * localstripe lets a publishable key do); the page's own service (`/_localstripe/...`) plays
 * Stripe's servers for what localstripe keeps to secret keys. It also names localstripe's card
 * inputs for screen readers (Stripe's real card iframe does that itself).
 */
(function () {
  "use strict";
  const script = document.querySelector('script[src*="/js.stripe.com/v3"]');
  const LOCALSTRIPE =
    window.LOCALSTRIPE_BASE_API || (script ? script.src.replace(/\/js\.stripe\.com\/v3\/?$/, "") : "");
  const LABELS = {
    number: "Card number", exp_month: "Expiry month (MM)", exp_year: "Expiry year (YY)",
    cvc: "Security code (CVC)", postal_code: "Postal code",
  };
  const localStripe = window.Stripe;

  async function json(response) {
    const body = await response.json().catch(() => ({}));
    return { ok: response.ok && !body.error, body };
  }

  function csrf() {
    // A page of ours with a session carries its CSRF token in its forms (the web console).
    const token = document.querySelector('input[name="csrftoken"]');
    return token ? { "x-csrftoken": token.value } : {};
  }

  async function post(url, body) {
    // text/plain JSON: a CORS "simple" request, which is what localstripe's server can answer.
    return json(await fetch(url, { method: "POST", body: JSON.stringify(body) }));
  }

  function cardOf(data) {
    const pm = data && data.payment_method !== undefined ? data.payment_method : data;
    if (pm && pm.card && pm.card.value !== undefined) return pm.card;
    return null;
  }

  window.Stripe = function (apiKey, options) {
    const stripe = localStripe(apiKey, options);
    const elements = stripe.elements;
    stripe.elements = function () {
      const group = elements.apply(this, arguments);
      const create = group.create;
      group.create = function () {
        const element = create.apply(this, arguments);
        const mount = element.mount.bind(element);
        element.mount = function (target) {
          mount(target);
          Object.entries(element._inputs || {}).forEach(([field, input]) => {
            input.setAttribute("aria-label", LABELS[field] || field);
            input.setAttribute("inputmode", "numeric");
            input.setAttribute("autocomplete", "off");
          });
        };
        return element;
      };
      return group;
    };

    stripe.createPaymentMethod = async function (params) {
      const element = params && params.card;
      if (!element || !element.value) {
        return { error: { type: "validation_error", message: "Your card number is incomplete." } };
      }
      const seti = await json(await fetch("/_localstripe/setup_intents", { method: "POST", headers: csrf() }));
      if (!seti.ok) return { error: { message: "The card service did not answer; try again." } };
      const billing = Object.assign({}, params.billing_details || {});
      billing.address = Object.assign({ postal_code: element.value.postal_code }, billing.address || {});
      const confirmed = await post(`${LOCALSTRIPE}/v1/setup_intents/${seti.body.id}/confirm`, {
        key: apiKey, client_secret: seti.body.client_secret,
        payment_method_data: { type: "card", card: element.value.card, billing_details: billing },
      });
      if (!confirmed.ok) return { error: confirmed.body.error || { message: "Your card was declined." } };
      const number = element.value.card.number || "";
      return {
        paymentMethod: {
          id: confirmed.body.payment_method, object: "payment_method", type: "card",
          card: { last4: number.slice(-4), exp_month: Number(element.value.card.exp_month),
                  exp_year: Number(element.value.card.exp_year) },
        },
      };
    };

    const confirmCardPayment = stripe.confirmCardPayment;
    stripe.confirmCardPayment = async function (clientSecret, data) {
      let paymentMethod = data && typeof data.payment_method === "string" ? data.payment_method : null;
      const element = cardOf(data);
      if (element) {
        const created = await stripe.createPaymentMethod({
          type: "card", card: element, billing_details: data.payment_method.billing_details,
        });
        if (created.error) return created;
        paymentMethod = created.paymentMethod.id;
      }
      if (!paymentMethod) return confirmCardPayment(clientSecret, data);  // 3-D Secure of a confirmed intent
      const intentId = clientSecret.split("_secret_")[0];
      const confirmed = await json(await fetch(`/_localstripe/payment_intents/${intentId}/confirm`, {
        method: "POST", headers: Object.assign({ "Content-Type": "application/json" }, csrf()),
        body: JSON.stringify({ client_secret: clientSecret, payment_method: paymentMethod }),
      }));
      if (!confirmed.ok) return { error: confirmed.body.error || { message: "Your card was declined." } };
      let intent = confirmed.body;
      if (intent.status === "requires_action") {
        const authenticated = await confirmCardPayment(clientSecret);  // localstripe's 3-D Secure dialog
        if (authenticated.error) return authenticated;
        intent = authenticated.paymentIntent;
      }
      if (intent.status === "requires_payment_method") {
        return { error: Object.assign({ type: "card_error" }, intent.last_payment_error), paymentIntent: intent };
      }
      return { paymentIntent: intent };
    };
    return stripe;
  };
})();
