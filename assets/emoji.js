// @ts-check
//! The small shipped `:shortcode:` → emoji table the composer completes from. Small on
//! purpose: the everyday set people type by name; any other emoji can still be typed or pasted.

/** @type {ReadonlyArray<[string, string]>} */
export const EMOJI = [
  ['smile', '😄'], ['grin', '😁'], ['joy', '😂'], ['rofl', '🤣'], ['slight_smile', '🙂'],
  ['wink', '😉'], ['blush', '😊'], ['heart_eyes', '😍'], ['thinking', '🤔'], ['neutral_face', '😐'],
  ['sweat_smile', '😅'], ['cry', '😢'], ['sob', '😭'], ['angry', '😠'], ['scream', '😱'],
  ['sunglasses', '😎'], ['upside_down', '🙃'], ['eyes', '👀'], ['skull', '💀'], ['clown', '🤡'],
  ['thumbsup', '👍'], ['thumbsdown', '👎'], ['ok_hand', '👌'], ['clap', '👏'], ['wave', '👋'],
  ['pray', '🙏'], ['muscle', '💪'], ['raised_hands', '🙌'], ['point_up', '☝️'], ['v', '✌️'],
  ['heart', '❤️'], ['broken_heart', '💔'], ['fire', '🔥'], ['star', '⭐'], ['sparkles', '✨'],
  ['tada', '🎉'], ['100', '💯'], ['check', '✅'], ['x', '❌'], ['warning', '⚠️'],
  ['rocket', '🚀'], ['coffee', '☕'], ['pizza', '🍕'], ['beer', '🍺'], ['cake', '🎂'],
  ['bug', '🐛'], ['cat', '🐱'], ['dog', '🐶'], ['rainbow', '🌈'], ['sun', '☀️'],
];
