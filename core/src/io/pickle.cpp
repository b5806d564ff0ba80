#include "msconv/io/pickle.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "msconv/error.h"

namespace msconv::io {
namespace {

using Kind = PickleValue::Kind;

// Calls whose meaning is plain data: building an (ordered) dict, or latin-1 encoding of a text
// (how Python 3 pickles bytes at protocol 2: _codecs.encode(text, "latin1")).
bool isDictFactory(const PicklePtr& c) {
  return c->isGlobal("collections.OrderedDict") || c->isGlobal("builtins.dict") ||
         c->isGlobal("__builtin__.dict");
}

std::string utf8ToLatin1(const std::string& s, bool* ok) {
  std::string out;
  *ok = true;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) {
      const unsigned cp = ((c & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      if (cp > 0xFF) *ok = false;
      out.push_back(static_cast<char>(cp & 0xFF));
      ++i;
    } else {
      *ok = false;
      return out;
    }
  }
  return out;
}

class Machine {
 public:
  Machine(const uint8_t* data, size_t size, const PickleOptions& o)
      : p_(data), size_(size), opts_(o) {}
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;
  // Unless run() handed out a checked tree, every node is taken apart before it is freed: values
  // of a malformed pickle can refer to themselves (memo, DUP, then APPEND, SETITEM or BUILD),
  // which shared_ptr never frees, or nest deeply enough for a recursive destruction to overflow
  // the stack.
  ~Machine() {
    for (const auto& v : made_) takeApart(*v);
  }

  PicklePtr run() {
    while (true) {
      if (pos_ >= size_) fail("ends before its STOP opcode");
      op_pos_ = pos_;
      const uint8_t op = p_[pos_++];
      if (op == '.') {  // STOP
        if (stack_.empty()) fail("STOP with an empty stack");
        PicklePtr root = pop();
        const auto reachable = checkShape(root);
        // The caller owns a finite, shallow tree; what it cannot reach (values left on the stack
        // or in the memo) may still form cycles.
        for (const auto& v : made_)
          if (!reachable.count(v.get())) takeApart(*v);
        made_.clear();
        return root;
      }
      if (!stackOp(op) && !scalarOp(op) && !containerOp(op) && !objectOp(op)) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", op);
        fail(std::string("unsupported opcode ") + buf);
      }
      if (stack_.size() > kMaxStack) fail("stack deeper than allowed");
    }
  }

 private:
  // The protocol, frame, mark and stack opcodes, None and booleans. False: not one of them.
  bool stackOp(uint8_t op) {
    switch (op) {
      case 0x80:
        u8();
        break;  // PROTO
      case 0x95:
        take(8);
        break;  // FRAME
      case '(':
        marks_.push_back(stack_.size());
        break;  // MARK
      case '0':
        pop();
        break;  // POP
      case '1':
        popMark();
        break;  // POP_MARK
      case '2':
        push(top());
        break;  // DUP
      case 'N':
        push(make(Kind::kNone));
        break;
      case 0x88:
        pushBool(true);
        break;  // NEWTRUE
      case 0x89:
        pushBool(false);
        break;  // NEWFALSE
      default:
        return false;
    }
    return true;
  }

  // Numbers, byte strings and texts. False: not one of them.
  bool scalarOp(uint8_t op) {
    switch (op) {
      case 'J':
        pushInt(static_cast<int32_t>(le(4)));
        break;  // BININT
      case 'K':
        pushInt(u8());
        break;  // BININT1
      case 'M':
        pushInt(static_cast<int64_t>(le(2)));
        break;  // BININT2
      case 0x8a:
        pushLong(u8());
        break;  // LONG1
      case 0x8b:
        pushLong(le(4));
        break;  // LONG4
      case 'I':
        pushTextInt(line());
        break;  // INT (protocol 0)
      case 'L':
        pushTextInt(line());
        break;     // LONG (protocol 0)
      case 'G': {  // BINFLOAT (big-endian)
        uint64_t bits = 0;
        const uint8_t* b = take(8);
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
        auto v = make(Kind::kFloat);
        std::memcpy(&v->real, &bits, 8);
        push(v);
        break;
      }
      case 'T':
        pushBytes(Kind::kBytes, le(4));
        break;  // BINSTRING (Python 2 str)
      case 'U':
        pushBytes(Kind::kBytes, u8());
        break;  // SHORT_BINSTRING
      case 'B':
        pushBytes(Kind::kBytes, le(4));
        break;  // BINBYTES
      case 'C':
        pushBytes(Kind::kBytes, u8());
        break;  // SHORT_BINBYTES
      case 0x8e:
        pushBytes(Kind::kBytes, le(8));
        break;  // BINBYTES8
      case 0x96:
        pushBytes(Kind::kBytes, le(8));
        break;  // BYTEARRAY8
      case 'X':
        pushBytes(Kind::kString, le(4));
        break;  // BINUNICODE
      case 0x8c:
        pushBytes(Kind::kString, u8());
        break;  // SHORT_BINUNICODE
      case 0x8d:
        pushBytes(Kind::kString, le(8));
        break;  // BINUNICODE8
      default:
        return false;
    }
    return true;
  }

  // Tuples, lists, dicts and sets. False: not one of them.
  bool containerOp(uint8_t op) {
    switch (op) {
      case ')':
        push(make(Kind::kTuple));
        break;     // EMPTY_TUPLE
      case 't': {  // TUPLE
        auto v = make(Kind::kTuple);
        v->items = popMark();
        push(v);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        const size_t n = op - 0x84;
        need(n);
        auto v = make(Kind::kTuple);
        v->items.assign(stack_.end() - n, stack_.end());
        stack_.resize(stack_.size() - n);
        push(v);
        break;
      }
      case ']':
        push(make(Kind::kList));
        break;     // EMPTY_LIST
      case 'l': {  // LIST
        auto v = make(Kind::kList);
        v->items = popMark();
        push(v);
        break;
      }
      case 'a': {  // APPEND
        auto x = pop();
        container(Kind::kList)->items.push_back(x);
        break;
      }
      case 'e': {  // APPENDS
        auto xs = popMark();
        auto& items = container(Kind::kList)->items;
        items.insert(items.end(), xs.begin(), xs.end());
        break;
      }
      case '}':
        push(make(Kind::kDict));
        break;     // EMPTY_DICT
      case 'd': {  // DICT
        auto xs = popMark();
        auto v = make(Kind::kDict);
        addEntries(v, xs);
        push(v);
        break;
      }
      case 's': {  // SETITEM
        auto value = pop();
        auto key = pop();
        container(Kind::kDict)->entries.emplace_back(key, value);
        break;
      }
      case 'u': {  // SETITEMS
        auto xs = popMark();
        addEntries(container(Kind::kDict), xs);
        break;
      }
      case 0x8f:
        push(make(Kind::kSet));
        break;      // EMPTY_SET
      case 0x90: {  // ADDITEMS
        auto xs = popMark();
        auto& items = container(Kind::kSet)->items;
        items.insert(items.end(), xs.begin(), xs.end());
        break;
      }
      case 0x91: {  // FROZENSET
        auto v = make(Kind::kSet);
        v->items = popMark();
        push(v);
        break;
      }
      default:
        return false;
    }
    return true;
  }

  // Globals, calls, BUILD, persistent ids and the memo. False: not one of them.
  bool objectOp(uint8_t op) {
    switch (op) {
      case 'c': {  // GLOBAL "module\nname\n"
        const std::string module = line();
        const std::string name = line();
        pushGlobal(module, name);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop();
        auto module = pop();
        if (module->kind != Kind::kString || name->kind != Kind::kString)
          fail("STACK_GLOBAL wants two strings");
        pushGlobal(module->text, name->text);
        break;
      }
      case 'R': {  // REDUCE
        auto args = pop();
        auto callable = pop();
        push(call(callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ
        auto args = pop();
        auto cls = pop();
        push(call(cls, args));
        break;
      }
      case 0x92: {  // NEWOBJ_EX
        pop();      // kwargs
        auto args = pop();
        auto cls = pop();
        push(call(cls, args));
        break;
      }
      case 'b': {  // BUILD
        auto state = pop();
        auto obj = top();
        if (obj->kind != Kind::kObject && obj->kind != Kind::kDict)
          fail("BUILD on a " + obj->kindName());
        obj->state = state;
        break;
      }
      case 'Q': {  // BINPERSID
        auto v = make(Kind::kPersistentId);
        v->args = pop();
        push(v);
        break;
      }
      case 'h':
        push(memoGet(u8()));
        break;  // BINGET
      case 'j':
        push(memoGet(le(4)));
        break;  // LONG_BINGET
      case 'g':
        push(memoGet(textIndex(line())));
        break;  // GET
      case 'q':
        memo_[u8()] = top();
        break;  // BINPUT
      case 'r':
        memo_[le(4)] = top();
        break;  // LONG_BINPUT
      case 'p':
        memo_[textIndex(line())] = top();
        break;  // PUT
      case 0x94:
        memo_[static_cast<uint64_t>(memo_.size())] = top();
        break;  // MEMOIZE
      default:
        return false;
    }
    return true;
  }

  static constexpr size_t kMaxStack = 1u << 22;
  // Nesting no file the readers take comes near (state_dicts nest a few levels; the optimizer's
  // state a few more), small enough for recursive readers and destruction on any thread's stack.
  static constexpr size_t kMaxDepth = 1000;

  PicklePtr make(Kind k) {
    auto v = std::make_shared<PickleValue>();
    v->kind = k;
    made_.push_back(v);
    return v;
  }

  static void takeApart(PickleValue& v) {
    v.items.clear();
    v.entries.clear();
    v.callable.reset();
    v.args.reset();
    v.state.reset();
  }

  // Fails for a value that contains itself or whose longest chain of nested values is longer
  // than kMaxDepth. Depth-first without recursion; shared values (memo references) are measured
  // once. Returns the height of every value reachable from `root`.
  std::unordered_map<const PickleValue*, size_t> checkShape(const PicklePtr& root) {
    struct Open {
      const PickleValue* value;
      std::vector<const PickleValue*> children;
      size_t next = 0;
    };
    std::unordered_map<const PickleValue*, size_t> height;  // 0: still open (on the path)
    std::vector<Open> path;
    auto open = [&](const PickleValue* v) {
      Open o{v, {}};
      for (const auto& x : v->items) o.children.push_back(x.get());
      for (const auto& [k, x] : v->entries) {
        o.children.push_back(k.get());
        o.children.push_back(x.get());
      }
      for (const auto* x : {v->callable.get(), v->args.get(), v->state.get()})
        if (x) o.children.push_back(x);
      height[v] = 0;
      path.push_back(std::move(o));
    };
    open(root.get());
    while (!path.empty()) {
      Open& top = path.back();
      if (top.next == top.children.size()) {
        size_t h = 1;
        for (const auto* c : top.children) h = std::max(h, height[c] + 1);
        if (h > kMaxDepth) fail("nests deeper than " + std::to_string(kMaxDepth) + " levels");
        height[top.value] = h;
        path.pop_back();
        continue;
      }
      const PickleValue* c = top.children[top.next++];
      const auto it = height.find(c);
      if (it == height.end())
        open(c);
      else if (it->second == 0)
        fail("holds a value that contains itself");
    }
    return height;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error((opts_.source.empty() ? std::string("pickle") : opts_.source) + ": " + what +
                " (pickle byte " + std::to_string(op_pos_) + ")");
  }
  const uint8_t* take(uint64_t n) {
    if (n > size_ - pos_) fail("truncated: needs " + std::to_string(n) + " more bytes");
    const uint8_t* r = p_ + pos_;
    pos_ += n;
    return r;
  }
  uint8_t u8() { return *take(1); }
  uint64_t le(int n) {
    const uint8_t* b = take(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | b[i];
    return v;
  }
  std::string line() {
    const size_t start = pos_;
    while (pos_ < size_ && p_[pos_] != '\n') ++pos_;
    if (pos_ >= size_) fail("truncated text argument");
    std::string s(reinterpret_cast<const char*>(p_ + start), pos_ - start);
    ++pos_;
    return s;
  }
  uint64_t textIndex(const std::string& s) {
    try {
      return std::stoull(s);
    } catch (const std::exception&) {
      fail("bad memo index '" + s + "'");
    }
  }
  void need(size_t n) {
    const size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() < floor + n) fail("stack underflow");
  }
  PicklePtr pop() {
    need(1);
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  const PicklePtr& top() {
    need(1);
    return stack_.back();
  }
  void push(PicklePtr v) { stack_.push_back(std::move(v)); }
  std::vector<PicklePtr> popMark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    if (m > stack_.size()) fail("corrupt MARK");
    std::vector<PicklePtr> out(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return out;
  }
  PicklePtr container(Kind k) {
    auto& t = top();
    if (t->kind != k) {
      auto expected = make(k);
      fail("expected a " + expected->kindName() + " on the stack, found a " + t->kindName());
    }
    return t;
  }
  void addEntries(const PicklePtr& dict, const std::vector<PicklePtr>& xs) {
    if (xs.size() % 2) fail("odd number of items for a dict");
    for (size_t i = 0; i < xs.size(); i += 2) dict->entries.emplace_back(xs[i], xs[i + 1]);
  }
  void pushBool(bool b) {
    auto v = make(Kind::kBool);
    v->boolean = b;
    push(v);
  }
  void pushInt(int64_t i) {
    auto v = make(Kind::kInt);
    v->integer = i;
    push(v);
  }
  void pushLong(uint64_t n) {
    if (n > 8) fail("integer wider than 64 bits");
    const uint8_t* b = take(n);
    uint64_t v = 0;
    for (int i = static_cast<int>(n) - 1; i >= 0; --i) v = (v << 8) | b[i];
    if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
    pushInt(static_cast<int64_t>(v));
  }
  void pushTextInt(const std::string& s) {
    if (s == "01") return pushBool(true);
    if (s == "00") return pushBool(false);
    std::string t = s;
    if (!t.empty() && t.back() == 'L') t.pop_back();
    try {
      pushInt(std::stoll(t));
    } catch (const std::exception&) {
      fail("bad integer '" + s + "'");
    }
  }
  void pushBytes(Kind k, uint64_t n) {
    auto v = make(k);
    const uint8_t* b = take(n);
    v->text.assign(reinterpret_cast<const char*>(b), n);
    push(v);
  }
  void pushGlobal(const std::string& module, const std::string& name) {
    const std::string q = module + "." + name;
    if (!opts_.allowed_globals.count(q)) fail("refers to global '" + q + "', which is not allowed");
    auto v = make(Kind::kGlobal);
    v->text = q;
    push(v);
  }
  PicklePtr memoGet(uint64_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) fail("memo reference " + std::to_string(i) + " was never stored");
    return it->second;
  }
  PicklePtr call(const PicklePtr& callable, const PicklePtr& args) {
    if (callable->kind != Kind::kGlobal) fail("call of a " + callable->kindName());
    if (args->kind != Kind::kTuple) fail("call arguments are a " + args->kindName());
    if (isDictFactory(callable)) {
      auto d = make(Kind::kDict);
      if (!args->items.empty() && args->items[0]->kind == Kind::kDict)
        d->entries = args->items[0]->entries;
      return d;
    }
    if (callable->isGlobal("_codecs.encode")) {
      if (args->items.empty() || args->items[0]->kind != Kind::kString)
        fail("_codecs.encode wants a text");
      const std::string codec = args->items.size() > 1 ? args->items[1]->text : "utf-8";
      auto v = make(Kind::kBytes);
      if (codec == "latin1" || codec == "latin-1" || codec == "iso-8859-1") {
        bool ok = true;
        v->text = utf8ToLatin1(args->items[0]->text, &ok);
        if (!ok) fail("_codecs.encode: text is not latin-1");
      } else if (codec == "utf-8" || codec == "utf8") {
        v->text = args->items[0]->text;
      } else {
        fail("_codecs.encode with unsupported codec '" + codec + "'");
      }
      return v;
    }
    auto obj = make(Kind::kObject);
    obj->callable = callable;
    obj->args = args;
    return obj;
  }

  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0, op_pos_ = 0;
  const PickleOptions& opts_;
  std::vector<PicklePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PicklePtr> memo_;
  std::vector<PicklePtr> made_;  // every node built, until run() hands the tree out
};

}  // namespace

PicklePtr PickleValue::get(const std::string& key) const {
  if (kind != Kind::kDict) return nullptr;
  for (const auto& [k, v] : entries)
    if ((k->kind == Kind::kString || k->kind == Kind::kBytes) && k->text == key) return v;
  return nullptr;
}

std::string PickleValue::kindName() const {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kSet:
      return "set";
    case Kind::kGlobal:
      return "global " + text;
    case Kind::kObject:
      return "object of " + (callable ? callable->text : std::string("?"));
    case Kind::kPersistentId:
      return "persistent id";
  }
  return "?";
}

PicklePtr unpickle(const uint8_t* data, size_t size, const PickleOptions& options) {
  Machine m(data, size, options);
  return m.run();
}

}  // namespace msconv::io
