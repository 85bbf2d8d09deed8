// Prints llama.cpp's tokenizations of hex-encoded lines, for gen_oracle.py. Build against a llama.cpp
// checkout (see gen_oracle.py): g++ -O2 -std=c++17 oracle.cpp -I include -I ggml/include -L build/bin -lllama
#include "llama.h"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

static std::string unhex(const std::string & h) {
    std::string s;
    for (size_t i = 0; i + 1 < h.size(); i += 2) s.push_back((char) std::stoi(h.substr(i, 2), nullptr, 16));
    return s;
}

static std::string hex(const std::string & s) {
    static const char * d = "0123456789abcdef";
    std::string h;
    for (unsigned char c : s) { h.push_back(d[c >> 4]); h.push_back(d[c & 15]); }
    return h;
}

static std::vector<llama_token> tok(const llama_vocab * v, const std::string & s, bool add, bool parse) {
    std::vector<llama_token> ids(s.size() * 4 + 8);
    int n = llama_tokenize(v, s.data(), (int) s.size(), ids.data(), (int) ids.size(), add, parse);
    ids.resize(n < 0 ? 0 : n);
    return ids;
}

static std::string detok(const llama_vocab * v, const std::vector<llama_token> & ids, bool unparse) {
    std::string out(ids.size() * 64 + 64, '\0');
    int n = llama_detokenize(v, ids.data(), (int) ids.size(), out.data(), (int) out.size(), false, unparse);
    out.resize(n < 0 ? 0 : n);
    return out;
}

static void print_ids(const char * tag, const std::vector<llama_token> & ids) {
    std::cout << tag;
    for (auto id : ids) std::cout << ' ' << id;
    std::cout << '\n';
}

int main(int argc, char ** argv) {
    if (argc != 3) { std::cerr << "usage: oracle MODEL.gguf LINES.hex\n"; return 2; }
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    auto params = llama_model_default_params();
    params.vocab_only = true;
    llama_model * model = llama_model_load_from_file(argv[1], params);
    if (!model) { std::cerr << "cannot load " << argv[1] << "\n"; return 1; }
    const llama_vocab * v = llama_model_get_vocab(model);
    const int n = llama_vocab_n_tokens(v);
    // FNV-1a 64 over (u32 LE length, bytes) of every token's piece with special = true.
    uint64_t h = 0xcbf29ce484222325ull;
    std::vector<llama_token> eog;
    char buf[1024];
    for (int t = 0; t < n; ++t) {
        int len = llama_token_to_piece(v, t, buf, sizeof buf, 0, true);
        unsigned char lb[4] = {(unsigned char) len, (unsigned char) (len >> 8), (unsigned char) (len >> 16), (unsigned char) (len >> 24)};
        for (unsigned char b : lb) { h ^= b; h *= 0x100000001b3ull; }
        for (int i = 0; i < len; ++i) { h ^= (unsigned char) buf[i]; h *= 0x100000001b3ull; }
        if (llama_vocab_is_eog(v, t)) eog.push_back(t);
    }
    std::cout << "n_vocab " << n << "\nbos " << llama_vocab_bos(v) << "\neos " << llama_vocab_eos(v)
              << "\neot " << llama_vocab_eot(v) << "\nadd_bos " << llama_vocab_get_add_bos(v) << "\n";
    char hs[17];
    snprintf(hs, sizeof hs, "%016llx", (unsigned long long) h);
    std::cout << "pieces_fnv1a64 " << hs << "\n";
    print_ids("eog", eog);
    std::ifstream in(argv[2]);
    std::string line;
    while (std::getline(in, line)) {
        std::string s = unhex(line);
        auto ids = tok(v, s, true, true);
        std::cout << "text " << line << "\n";
        print_ids("ids", ids);
        print_ids("ids_no_bos", tok(v, s, false, true));
        print_ids("ids_no_parse_special", tok(v, s, false, false));
        std::cout << "decoded " << hex(detok(v, ids, true)) << "\n";
        std::cout << "decoded_no_special " << hex(detok(v, ids, false)) << "\n";
    }
    llama_model_free(model);
    return 0;
}
